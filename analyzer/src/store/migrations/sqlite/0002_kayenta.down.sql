DROP TABLE kayenta_executions;
DROP TABLE kayenta_configs;
