"""What the bot does, one use-case per module: incidents, customer updates (publishing), alert
intake and the payloads it reads, the operating rhythm (what people start and what the calendar
posts), SLA reports, the App Home and the active matrix. They read the clock and storage and plan
messages into the outbox; Block Kit comes from `bot.render`."""
