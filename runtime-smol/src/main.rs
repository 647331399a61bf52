fn main() {
    std::process::exit(clawgate_smol::main_entry());
}
