"""Block Kit builders, pure: domain data in, `Message`s and views out. Nothing here talks to Slack
or storage (an import contract in pyproject.toml checks it)."""
