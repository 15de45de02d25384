-- A failed request's outcome is its refusal (`error_reason`, a slug such as
-- `insufficient-funds`) and message; how a refusal is told to a gRPC caller is the gRPC
-- layer's business, so the table no longer stores a gRPC status code.
alter table idempotency_keys drop column error_code;
