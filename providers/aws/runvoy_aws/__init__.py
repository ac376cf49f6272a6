"""runvoy provider for AWS. The SDK is imported only when the provider is first used."""
