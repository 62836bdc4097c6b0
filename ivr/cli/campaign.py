"""`python -m ivr campaign ...`."""

from ivr.outbound.campaign import campaign_group as campaign

__all__ = ["campaign"]
