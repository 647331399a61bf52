//! clawgate-smol: the smol shell. Not built yet (issue 3); the crate reserves its place in the
//! workspace so the layout matches ARCHITECTURE.md.
