"""SageMaker state-change events from EventBridge: they close what the routes open."""
