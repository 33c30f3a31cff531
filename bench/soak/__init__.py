"""The soak and fault campaign: the real `homesec run` under load and scheduled faults.

    uv run python -m bench.soak --duration 30m

See `campaign.py` for what runs and `verify.py` for what is proven at the end.
"""
