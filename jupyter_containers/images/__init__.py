"""Images: references, registries, the content store, unpacking into snapshots."""
