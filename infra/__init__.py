"""CDK app for ksflow: the stack, its constructs per concern, and the Lambda asset build."""
