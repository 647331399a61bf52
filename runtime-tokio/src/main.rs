fn main() {
    std::process::exit(clawgate_tokio::main_entry());
}
