// SmeltQuantize: see docs/ARCHITECTURE.md.
