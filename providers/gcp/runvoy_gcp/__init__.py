"""runvoy provider for GCP: Cloud Run jobs, Cloud Logging and GCS. The Google libraries are imported only
when the provider is created (``runvoy_gcp.provider``), never by the entry point or the config model."""
