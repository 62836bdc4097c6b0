"""The agent room: conversations of `agent:` states on Twilio's ConversationRelay, and the models behind them."""
