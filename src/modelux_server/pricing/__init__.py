"""Model prices (the `genai-prices` database, plus operator overrides) and request costs."""
