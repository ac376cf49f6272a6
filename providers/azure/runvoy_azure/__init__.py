"""runvoy provider for AZURE. The SDK is imported only when the provider is first used."""
