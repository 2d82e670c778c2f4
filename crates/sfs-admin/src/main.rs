//! The SFS admin (work in progress).

fn main() {
    eprintln!("sfs-admin: not implemented yet");
    std::process::exit(2);
}
