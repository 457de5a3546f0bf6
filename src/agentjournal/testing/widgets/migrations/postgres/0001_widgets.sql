-- A table owned by a higher layer, kept in the journal's database.
CREATE TABLE aj_test_widgets (
    name VARCHAR(100) PRIMARY KEY,
    size INTEGER NOT NULL
);
