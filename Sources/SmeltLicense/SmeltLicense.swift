// SmeltLicense: see docs/ARCHITECTURE.md.
