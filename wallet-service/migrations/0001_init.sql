-- The wallet-service schema starts empty; its tables arrive with the wallet capability.
select 1;
