//! Making sure the data directory (and the blob directory) can be written,
//! before anything else depends on it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::{Config, ConfigError, settings};

/// Creates the data and blob directories if needed and proves each writable by
/// creating and removing a file in it. Failing here, at start-up, gives one
/// clear line instead of a failed request later.
pub fn prepare(config: &Config) -> Result<(), ConfigError> {
    let storage = &config.storage;
    ensure_writable(config, &settings::DATA_DIRECTORY, &storage.data_directory)?;
    ensure_writable(
        config,
        &settings::BLOBSTORE_DISK_LOCATION,
        &storage.blobstore_disk_location,
    )
}

fn ensure_writable(
    config: &Config,
    setting: &settings::Setting,
    dir: &Path,
) -> Result<(), ConfigError> {
    let fail = |problem: String| ConfigError::new(&config.setting_name(setting), problem);
    // Created readable by the server's user only: the databases hold signing keys and
    // password hashes (an existing directory keeps the mode its owner gave it).
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| fail(format!("cannot create directory {}: {e}", dir.display())))?;
    let probe = dir.join(format!(".pds-write-check-{}", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .and_then(|mut file| file.write_all(b"ok"));
    let removed = fs::remove_file(&probe);
    written
        .and(removed)
        .map_err(|e| fail(format!("directory {} is not writable: {e}", dir.display())))
}
