"""The web console's domain side: browser sessions started with an API key."""
