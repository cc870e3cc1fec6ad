// The configuration file the test server starts with (database, bind, artifacts and JWT secret come
// from the environment in globalSetup). Workers poll often so jobs finish within the tests' short
// polling intervals; besides fast default models there is a slow one (to cancel, or to reload the
// page while it runs) and one that always fails.

/** Model names the tests pass as `modelName`. */
export const MODELS = {
  slowText: 'Slow Text',
  slowImage: 'Slow Image',
  brokenText: 'Broken Text',
} as const;

export const SERVER_CONFIG = `
[server]
log_level = "info"
events_poll_ms = 50

[worker]
poll_interval_ms = 50
progress_interval_ms = 50
cancel_check_interval_ms = 50
shutdown_grace_secs = 1

[[models]]
name = "Test Text"
kind = "text"
adapter = "simulated"
default = true
simulated = { latency_ms = 100 }

[[models]]
name = "Test Image"
kind = "image"
adapter = "simulated"
default = true
simulated = { latency_ms = 200 }

[[models]]
name = "Test Video"
kind = "video"
adapter = "simulated"
default = true
simulated = { latency_ms = 200 }

[[models]]
name = "${MODELS.slowText}"
kind = "text"
adapter = "simulated"
simulated = { latency_ms = 1500 }

[[models]]
name = "${MODELS.slowImage}"
kind = "image"
adapter = "simulated"
simulated = { latency_ms = 1500 }

[[models]]
name = "${MODELS.brokenText}"
kind = "text"
adapter = "simulated"
simulated = { failure_rate = 1.0 }
`;
