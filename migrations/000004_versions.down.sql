DROP TABLE IF EXISTS document_versions;
