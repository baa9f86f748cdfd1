/// The version of the Winnow library and the `winnow` tool: `winnow --version` prints it, and every run
/// records it in `RUN/winnow.json` (`winnow_version`).
///
///     print(winnowVersion)   // 0.1.0
public let winnowVersion = "0.1.0"
