//! The asm binary: set up the process, hand over to [`asm::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    // One TLS crypto provider for reqwest, kube and the sandbox.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let env = asm::environment::Environment::from_process();
    asm::logging::init(&env);
    // The live progress line only where stderr is a terminal (never control characters in
    // a CI log).
    let printer = asm::output::Printer::stdio(env.stderr_color()).with_live_line(env.stderr_is_tty);
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(asm::run(std::env::args_os(), env, printer)),
        Err(_) => asm::error::exit::APPLY_FAILED,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
