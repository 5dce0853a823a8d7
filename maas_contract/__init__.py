"""The seams between infra/, handlers/ and the local stack, defined once.

Standard library only and no import side effects: the Lambda asset ships this package beside
handlers/, the CDK app imports it at synth time, and the local stack imports it to hold its
emulators to the same rules.
"""
