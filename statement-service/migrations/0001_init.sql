-- The statement-service schema starts empty; its tables arrive with the statement capability.
select 1;
