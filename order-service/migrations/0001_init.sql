-- The order-service schema starts empty; its tables arrive with the order capability.
select 1;
