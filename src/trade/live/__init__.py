"""The live path: where the engine, a broker and the exchange client meet (paper, demo, live)."""
