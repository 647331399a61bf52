//! The test suite's fake OpenAI-compatible provider as a process (`clawgate-fake-provider PORT`):
//! the README test runs it on the port of the local model server its examples use. It answers
//! every model (see `clawgate_tests::upstream`) and runs until killed.

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(11434);
    let up = clawgate_tests::upstream::FakeUpstream::start_on_port(port);
    println!("fake provider on {}", up.base_url());
    loop {
        std::thread::park();
    }
}
