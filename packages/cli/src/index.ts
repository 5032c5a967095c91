// Implementation lands with its issue; see docs/architecture.md.
export {};
