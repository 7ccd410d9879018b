//! `eci-vk crd`: the ImageCache CustomResourceDefinition as YAML on stdout.

use std::{io::Write, process::ExitCode};

use super::{Failure, exit};

pub(super) fn main() -> ExitCode {
    exit("crd", print())
}

fn print() -> Result<(), Failure> {
    let yaml = crate::imagecache::crd_yaml()
        .map_err(|error| Failure::Runtime(format!("cannot render the CRD as YAML: {error}")))?;
    let mut out = std::io::stdout().lock();
    match out.write_all(yaml.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`eci-vk crd | head`) is not a failure of ours.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::Runtime(format!("cannot write to stdout: {error}"))),
    }
}
