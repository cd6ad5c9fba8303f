"""Jinja runbook templates (Slack mrkdwn-flavoured, channel-neutral markup)."""
