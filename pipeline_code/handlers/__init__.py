"""AWS Lambda handlers of the loop (standard library + boto3 only: they run on the stock Lambda runtime)."""
