"""In-repo fakes of Google REST APIs used by the gcp provider's tests (test infrastructure, not product code)."""
