"""The jsii floor: a one-stack CDK app with a single bucket, synthesized the same way as app.py."""

from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

app = App()
stack = Stack(app, "Trivial")
s3.Bucket(stack, "Bucket")
app.synth()
