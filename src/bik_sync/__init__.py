"""bik-sync: customer records from S3 and SQS into BIK user properties."""

__version__ = "0.1.0"
