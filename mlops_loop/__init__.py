"""mlops-loop: the CDK app that provisions a governed ML lifecycle on AWS as one closed loop."""
