"""runvoy provider for Azure: Container Instances, logs archived to Blob storage, records and locks in Table
storage. The Azure SDK is imported only when the provider is first used."""
