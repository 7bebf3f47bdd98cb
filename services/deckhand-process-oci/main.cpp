// deckhand-process-oci: the process back-end's OCI runtime. It takes runc's
// command line and runs a bundle's process as a plain host process, without
// privileges; see deckhand/process_oci/process_runtime.hpp.

#include "deckhand/process_oci/process_runtime.hpp"

int main(int argc, char** argv) { return deckhand::process_oci::process_runtime_main(argc, argv); }
