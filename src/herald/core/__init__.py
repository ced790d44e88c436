"""The domain core: models, rules and use cases. Imports nothing but the standard library."""
