"""Reusable test kit for providers: conformance suites (subclass them in a provider's tests) and the cloud
simulator that makes local protocol servers behave like a cloud. Imports pytest only where a suite needs it."""
