"""The Twilio Studio flow importer: a Flow Definition in, a checked flow file of the flow language out."""
