// SmeltConvert: see docs/ARCHITECTURE.md.
