//! The SFS protocol core: sans-IO (work in progress).
