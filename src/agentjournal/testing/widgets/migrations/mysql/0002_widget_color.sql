ALTER TABLE aj_test_widgets ADD COLUMN color VARCHAR(20);
