"""Every call to Slack's Web API: posting (the gateway, which also sorts failures), and reading the
workspace (user groups, channels, users). The one room that builds on `slack_sdk.WebClient`."""
