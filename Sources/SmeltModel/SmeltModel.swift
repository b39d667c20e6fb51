// SmeltModel: see docs/ARCHITECTURE.md.
