// SmeltTokenizer: see docs/ARCHITECTURE.md.
