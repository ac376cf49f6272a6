"""runvoy provider for GCP. The SDK is imported only when the provider is first used."""
