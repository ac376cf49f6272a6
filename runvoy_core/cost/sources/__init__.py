"""Parsers (and fetchers) for the providers' machine-readable price sources, used by ``runvoy cost refresh``.

Each module turns a recorded API response into catalog rows; fetching uses urllib (boto3 only when
installed, imported lazily), so the core still imports no cloud SDK.
"""
