"""The deployment's operations: declarations, notifications, subscriptions, parties."""
