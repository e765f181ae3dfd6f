DROP TABLE IF EXISTS document_checkpoints;
DROP TABLE IF EXISTS document_updates;
DROP TABLE IF EXISTS documents;
